/*
 * oneDNN's bf16 products on the shapes of a Cerebras-GPT 111M training step (B 4, T 256: M = 1024), each layout as
 * Wafer calls it (forward NN, input gradient NT, weight gradient TN; the LM head's three), through the BLAS-like call
 * Wafer takes (dnnl_gemm_bf16bf16f32, f32 output) and through the matmul primitive (f32 and bf16 output), cache-hot
 * (best of repeated calls) and cold (a 256 MB sweep before each call). BENCHMARKS.md, issue 15, session 7.
 * Needs Debian's libdnnl-dev:
 *   gcc -O2 tools/bf16_shapes_bench.c -o /tmp/bf16_shapes_bench -ldnnl && OMP_NUM_THREADS=2 /tmp/bf16_shapes_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
dnnl_status_t dnnl_gemm_bf16bf16f32(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define CK(x) do{dnnl_status_t s=(x); if(s){printf("err %d at %s\n",s,#x);exit(1);}}while(0)
dnnl_engine_t eng; dnnl_stream_t str;
static float *flush; static long NF = 64L<<20;
static void doflush(){ for(long i=0;i<NF;i+=16) flush[i]+=1; }
dnnl_primitive_t mk(int ta,int tb,int M,int N,int K, dnnl_data_type_t dst, float beta){
  dnnl_memory_desc_t a,b,c; dnnl_dims_t da={M,K},db={K,N},dc={M,N};
  dnnl_dims_t sa={ta?1:K, ta?M:1}, sb={tb?1:N, tb?K:1}, sc={N,1};
  CK(dnnl_memory_desc_init_by_strides(&a,2,da,dnnl_bf16,sa));
  CK(dnnl_memory_desc_init_by_strides(&b,2,db,dnnl_bf16,sb));
  CK(dnnl_memory_desc_init_by_strides(&c,2,dc,dst,sc));
  dnnl_matmul_desc_t md; CK(dnnl_matmul_desc_init(&md,&a,&b,NULL,&c));
  dnnl_primitive_attr_t attr; CK(dnnl_primitive_attr_create(&attr));
  if (beta != 0) { dnnl_post_ops_t po; CK(dnnl_post_ops_create(&po)); CK(dnnl_post_ops_append_sum(po, beta)); CK(dnnl_primitive_attr_set_post_ops(attr, po)); }
  dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd,&md,attr,eng,NULL));
  const char* impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl); printf("  impl %s\n",impl);
  dnnl_primitive_t p; CK(dnnl_primitive_create(&p,pd)); return p;
}
void run(const char*name,int ta,int tb,int M,int N,int K,float beta,int reps){
  float*C=malloc(4L*M*N); uint16_t*Ab=malloc(2L*M*K),*Bb=malloc(2L*K*N),*Cb=malloc(2L*M*N);
  for(long i=0;i<(long)M*K;i++)Ab[i]=0x3f80+(rand()&63);
  for(long i=0;i<(long)K*N;i++)Bb[i]=0x3f80+(rand()&63);
  memset(C,0,4L*M*N);
  double fl=2.0*M*N*K; printf("%s M%d N%d K%d ta%d tb%d beta %g\n",name,M,N,K,ta,tb,beta);
  int lda=ta?M:K, ldb=tb?K:N;
  dnnl_primitive_t p=mk(ta,tb,M,N,K,dnnl_f32,beta), pb=mk(ta,tb,M,N,K,dnnl_bf16,beta);
  dnnl_primitive_desc_t pd; dnnl_memory_t ma,mb,mc,mcb;
  dnnl_primitive_get_primitive_desc(p,(const_dnnl_primitive_desc_t*)&pd);
  CK(dnnl_memory_create(&ma,dnnl_primitive_desc_query_md(pd,dnnl_query_src_md,0),eng,Ab));
  CK(dnnl_memory_create(&mb,dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0),eng,Bb));
  CK(dnnl_memory_create(&mc,dnnl_primitive_desc_query_md(pd,dnnl_query_dst_md,0),eng,C));
  dnnl_primitive_get_primitive_desc(pb,(const_dnnl_primitive_desc_t*)&pd);
  CK(dnnl_memory_create(&mcb,dnnl_primitive_desc_query_md(pd,dnnl_query_dst_md,0),eng,Cb));
  dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,ma},{DNNL_ARG_WEIGHTS,mb},{DNNL_ARG_DST,mc}};
  dnnl_exec_arg_t argsb[3]={{DNNL_ARG_SRC,ma},{DNNL_ARG_WEIGHTS,mb},{DNNL_ARG_DST,mcb}};
  for (int cold=0; cold<2; cold++) {
    double b1=1e9,b2=1e9,b3=1e9;
    for(int i=0;i<reps;i++){
      if(cold) doflush(); double t=now(); CK(dnnl_gemm_bf16bf16f32(ta?'T':'N',tb?'T':'N',M,N,K,1,Ab,lda,Bb,ldb,beta,C,N)); t=now()-t; if(t<b1)b1=t;
      if(cold) doflush(); t=now(); CK(dnnl_primitive_execute(p,str,3,args)); dnnl_stream_wait(str); t=now()-t; if(t<b2)b2=t;
      if(cold) doflush(); t=now(); CK(dnnl_primitive_execute(pb,str,3,argsb)); dnnl_stream_wait(str); t=now()-t; if(t<b3)b3=t;
    }
    printf("  %s: gemm f32out %.2f ms %.0f | matmul f32out %.2f ms %.0f | matmul bf16out %.2f ms %.0f GF/s\n", cold?"cold":"hot ", b1*1e3, fl/b1/1e9, b2*1e3, fl/b2/1e9, b3*1e3, fl/b3/1e9);
  }
}
int main(int argc, char **argv){
  flush = malloc(4*NF); memset(flush,0,4*NF);
  CK(dnnl_engine_create(&eng,dnnl_cpu,0)); CK(dnnl_stream_create(&str,eng,dnnl_stream_default_flags));
  printf("oneDNN isa %s\n", dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()));
  int BT=1024;
  run("c_attn f",0,0,BT,2304,768,1,6); run("c_attn dX",0,1,BT,768,2304,0,6); run("c_attn dW",1,0,768,2304,BT,1,6);
  run("c_fc f",0,0,BT,3072,768,1,6); run("c_fc dX",0,1,BT,768,3072,0,6); run("c_fc dW",1,0,768,3072,BT,1,6);
  run("mproj f",0,0,BT,768,3072,1,6); run("mproj dX",0,1,BT,3072,768,0,6); run("mproj dW",1,0,3072,768,BT,1,6);
  run("lm f",0,1,BT,50257,768,0,3); run("lm dX",0,0,BT,768,50257,0,3); run("lm dW",1,0,50257,768,BT,1,3);
  return 0;
}
