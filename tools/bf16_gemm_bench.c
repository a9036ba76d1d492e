/*
 * The exploration behind --precision bf16 (BENCHMARKS.md): GFLOP/s of OpenBLAS's sgemm, oneDNN's sgemm, oneDNN's
 * bf16 GEMM (dnnl_gemm_bf16bf16f32, exported but not in the headers: the path Wafer takes, tensor/OneDnn) and
 * oneDNN's matmul primitive (bf16 and f32), on the 111M model's c_fc shapes (BT = 1024), in one run, three rounds.
 * Needs Debian's libdnnl-dev and libopenblas0-pthread:
 *   gcc -O2 tools/bf16_gemm_bench.c -o /tmp/bf16_gemm_bench -ldnnl /usr/lib/x86_64-linux-gnu/libopenblas.so.0
 *   OMP_NUM_THREADS=2 /tmp/bf16_gemm_bench 2      (wall time, 2 threads)
 *   OMP_NUM_THREADS=1 /tmp/bf16_gemm_bench 1      (1 thread, timed in thread CPU time: stable on a shared machine)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
extern void cblas_sgemm(int,int,int,int,int,int,float,const float*,int,const float*,int,float,float*,int);
extern void openblas_set_num_threads(int);
dnnl_status_t dnnl_gemm_bf16bf16f32(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);
static int threads = 2;
static double now(){struct timespec t;clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static uint16_t bf(float f){uint32_t u;memcpy(&u,&f,4);return (u+0x7fff+((u>>16)&1))>>16;}
#define CK(x) do{dnnl_status_t s=(x); if(s){printf("err %d at %s\n",s,#x);exit(1);}}while(0)
dnnl_engine_t eng; dnnl_stream_t str;
/* matmul primitive: C[M,N] = op(A) op(B), A bf16, B bf16, C f32 */
dnnl_primitive_t mk(int ta,int tb,int M,int N,int K, dnnl_data_type_t dt){
  dnnl_memory_desc_t a,b,c; dnnl_dims_t da={M,K},db={K,N},dc={M,N};
  dnnl_dims_t sa={ta?1:K, ta?M:1}, sb={tb?1:N, tb?K:1}, sc={N,1};
  CK(dnnl_memory_desc_init_by_strides(&a,2,da,dt,sa));
  CK(dnnl_memory_desc_init_by_strides(&b,2,db,dt,sb));
  CK(dnnl_memory_desc_init_by_strides(&c,2,dc,dnnl_f32,sc));
  dnnl_matmul_desc_t md; CK(dnnl_matmul_desc_init(&md,&a,&b,NULL,&c));
  dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd,&md,NULL,eng,NULL));
  const char* impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl); printf("  impl %s\n",impl);
  dnnl_primitive_t p; CK(dnnl_primitive_create(&p,pd)); return p;
}
void run(int ta,int tb,int M,int N,int K,int reps){
  float*A=malloc(4L*M*K),*B=malloc(4L*K*N),*C=malloc(4L*M*N); uint16_t*Ab=malloc(2L*M*K),*Bb=malloc(2L*K*N);
  for(long i=0;i<(long)M*K;i++){A[i]=rand()/(float)RAND_MAX-.5f;Ab[i]=bf(A[i]);}
  for(long i=0;i<(long)K*N;i++){B[i]=rand()/(float)RAND_MAX-.5f;Bb[i]=bf(B[i]);}
  double fl=2.0*M*N*K; printf("M%d N%d K%d ta%d tb%d\n",M,N,K,ta,tb);
  int lda=ta?M:K, ldb=tb?K:N;
  for(int r=0;r<3;r++){
   double t=now(); for(int i=0;i<reps;i++) cblas_sgemm(101,ta?112:111,tb?112:111,M,N,K,1,A,lda,B,ldb,0,C,N); double g1=fl*reps/(now()-t)/1e9;
   t=now(); for(int i=0;i<reps;i++) dnnl_sgemm(ta?'T':'N',tb?'T':'N',M,N,K,1,A,lda,B,ldb,0,C,N); double g2=fl*reps/(now()-t)/1e9;
   t=now(); for(int i=0;i<reps;i++) CK(dnnl_gemm_bf16bf16f32(ta?'T':'N',tb?'T':'N',M,N,K,1,Ab,lda,Bb,ldb,0,C,N)); double g3=fl*reps/(now()-t)/1e9;
   static dnnl_primitive_t p; if(r==0) p=mk(ta,tb,M,N,K,dnnl_bf16);
   dnnl_memory_t ma,mb,mc; dnnl_primitive_desc_t pd; dnnl_primitive_get_primitive_desc(p,(const_dnnl_primitive_desc_t*)&pd);
   CK(dnnl_memory_create(&ma,dnnl_primitive_desc_query_md(pd,dnnl_query_src_md,0),eng,Ab));
   CK(dnnl_memory_create(&mb,dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0),eng,Bb));
   CK(dnnl_memory_create(&mc,dnnl_primitive_desc_query_md(pd,dnnl_query_dst_md,0),eng,C));
   dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,ma},{DNNL_ARG_WEIGHTS,mb},{DNNL_ARG_DST,mc}};
   t=now(); for(int i=0;i<reps;i++) CK(dnnl_primitive_execute(p,str,3,args)); dnnl_stream_wait(str); double g4=fl*reps/(now()-t)/1e9;
   static dnnl_primitive_t pf; if(r==0) pf=mk(ta,tb,M,N,K,dnnl_f32);
   dnnl_primitive_get_primitive_desc(pf,(const_dnnl_primitive_desc_t*)&pd);
   dnnl_memory_t fa,fb,fc;
   CK(dnnl_memory_create(&fa,dnnl_primitive_desc_query_md(pd,dnnl_query_src_md,0),eng,A));
   CK(dnnl_memory_create(&fb,dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0),eng,B));
   CK(dnnl_memory_create(&fc,dnnl_primitive_desc_query_md(pd,dnnl_query_dst_md,0),eng,C));
   dnnl_exec_arg_t fargs[3]={{DNNL_ARG_SRC,fa},{DNNL_ARG_WEIGHTS,fb},{DNNL_ARG_DST,fc}};
   t=now(); for(int i=0;i<reps;i++) CK(dnnl_primitive_execute(pf,str,3,fargs)); dnnl_stream_wait(str); double g5=fl*reps/(now()-t)/1e9;
   printf("  openblas sgemm %.1f | dnnl_sgemm %.1f | dnnl gemm_bf16 %.1f | matmul bf16 %.1f | matmul f32 %.1f GFLOP/s\n",g1,g2,g3,g4,g5);
  }
}
int main(int argc, char **argv){
  if (argc > 1) threads = atoi(argv[1]);
  CK(dnnl_engine_create(&eng,dnnl_cpu,0)); CK(dnnl_stream_create(&str,eng,dnnl_stream_default_flags));
  printf("oneDNN isa %s, %d thread(s)\n", dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), threads);
  openblas_set_num_threads(threads);
  run(0,0,1024,3072,768,8);  /* fwd */
  run(0,1,1024,768,3072,8);  /* dX = dY W^T */
  run(1,0,768,3072,1024,8);  /* dW = X^T dY */
  return 0;
}
